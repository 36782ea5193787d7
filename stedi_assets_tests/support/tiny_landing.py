"""A hand-made landing folder small enough to reason about every row (for S3/SQL tests)."""

from __future__ import annotations

import json
from pathlib import Path


def _customer(name: str, serial: str, consent: int | None, include_key: bool = True) -> dict:
    row = {"customerName": name, "email": f"{name}@example.com", "phone": 8015551212,
           "birthDay": "1970-01-01", "serialNumber": serial, "registrationDate": 1000.0,
           "lastUpdateDate": 1000, "shareWithPublicAsOfDate": None,
           "shareWithFriendsAsOfDate": None}
    if include_key:
        row["shareWithResearchAsOfDate"] = consent
    return row


CUSTOMERS = [
    _customer("ann", "serial-a", 500),
    _customer("bob", "serial-b", 600),
    _customer("cy", "serial-c", None, include_key=False),  # consent key absent
    _customer("dee", "serial-d", None),                     # consent null
]
ACCELEROMETER = [
    {"user": "ann@example.com", "timestamp": 1000, "x": 1.0, "y": 0.0, "z": 0.0},
    {"user": "ann@example.com", "timeStamp": 2000, "x": 2.0, "y": 0.0, "z": 0.0},
    {"user": "bob@example.com", "timestamp": 1000, "x": 3.0, "y": 0.0, "z": 0.0},
    {"user": "cy@example.com", "timestamp": 3000, "x": 4.0, "y": 0.0, "z": 0.0},
]
STEP_TRAINER = [
    {"sensorReadingTime": 1000, "serialNumber": "serial-a", "distanceFromObject": 10},
    {"sensorReadingTime": 5000, "serialNumber": "serial-a", "distanceFromObject": 11},
    {"sensorReadingTime": 2000, "serialNumber": "serial-b", "distanceFromObject": 12},
    {"sensorReadingTime": 3000, "serialNumber": "serial-c", "distanceFromObject": 13},
]

#: Worked out by hand from the rows above.
EXPECTED_COUNTS = {
    "customer_landing": 4, "accelerometer_landing": 4, "step_trainer_landing": 4,
    "customer_trusted": 2,        # ann, bob
    "accelerometer_trusted": 3,   # ann x2, bob x1
    "customer_curated": 2,        # ann, bob
    "step_trainer_trusted": 3,    # serial-a x2, serial-b
    "machine_learning_curated": 3,  # a@1000 x (ann, bob), b@2000 x ann
    "customer_landing_rejects": 0, "accelerometer_landing_rejects": 0,
    "step_trainer_landing_rejects": 0,
}
CUSTOMERS_WITHOUT_CONSENT = 2


def write_tiny_landing(root: Path) -> Path:
    """Write the three sources as JSON lines, two files per source; returns `root`."""
    for source, rows in (("customer", CUSTOMERS), ("accelerometer", ACCELEROMETER),
                         ("step_trainer", STEP_TRAINER)):
        folder = root / source
        folder.mkdir(parents=True, exist_ok=True)
        half = len(rows) // 2
        for index, chunk in enumerate((rows[:half], rows[half:])):
            lines = "".join(json.dumps(row) + "\n" for row in chunk)
            (folder / f"{source}-{index}.json").write_text(lines)
    return root
