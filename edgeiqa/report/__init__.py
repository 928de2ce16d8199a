"""report: merge bench result files into tables, an HTML page, Pareto plots and a recommendation."""
