"""report: merge bench result files into tables, an HTML page, Pareto plots and a recommendation."""

# The SRCC an artifact may lose against its device's FP32 student and still be recommended (see
# edgeiqa.report.recommend). Defined here, where importing it costs nothing, so ``edgeiqa report``'s
# parser can quote it without loading the statistics behind the recommendation.
DEFAULT_BUDGET = 0.005
