"""The engines wing: the Dagster-facing compute engines and what they offer.

    protocol.py        EngineOps: the table and check-figure functions every engine offers
                       (transforms/polars and transforms/spark satisfy it)
    base.py            Engine (the resource the assets take) and LandingBatch
    polars_engine.py   PolarsEngine: Polars on this machine, streaming landing, landing cache
    landing_cache.py   each landing file's parsed rows, kept per file (incremental landing)
    spark_engine.py    SparkEngine and the LakehouseSpark session (imports PySpark: load it
                       only when STEDI_ENGINE=spark)

Nothing is imported here, so `stedi_assets.engines.protocol` stays free of Dagster and PySpark
(the Glue steps type their ops with it).
"""
