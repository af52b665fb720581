"""National code tables, shipped as data files that name their source and date (read once)."""
