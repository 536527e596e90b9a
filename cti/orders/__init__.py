"""Orders from the order system (HTTP API, CSV/XLSX import), their credit (R-FIRST-OWNER) and the
rewards they earn (champions, commission)."""
