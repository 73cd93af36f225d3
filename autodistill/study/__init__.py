"""The search service: study storage, the search loop, objectives, the Pareto front."""
