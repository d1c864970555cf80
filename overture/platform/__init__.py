"""Ground floor: config, database and tenant scope, errors, logging, queue."""
