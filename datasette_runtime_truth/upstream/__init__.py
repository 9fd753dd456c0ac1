"""What the upstream Go code does, reproduced exactly: Go's JSON and fmt, yaml.v3,
protojson, the backfill rules and the DDL. Pure: nothing here imports datasette."""
