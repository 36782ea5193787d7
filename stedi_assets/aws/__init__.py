"""AWS integration: Glue Data Catalog registration (and, later, Glue job deployment)."""
