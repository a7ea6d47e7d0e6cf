"""Nine open research directions, one per agent by default (as in the AAR setup)."""

DIRECTIONS: tuple[str, ...] = (
    "Confidence-based filtering and re-weighting of the weak labels: which examples to trust?",
    "Auxiliary losses that let the student disagree with the teacher (logconf and beyond).",
    "Iterative self-training and label refinement with the student's own predictions.",
    "Unsupervised structure in the strong model's features (clustering, probes, contrast) "
    "combined with the weak labels.",
    "Modelling the weak teacher's errors: calibration, noise transition matrices, "
    "error-correlated features.",
    "Ensembles and bagging of students trained on different views or resamples.",
    "Regularisation against imitating the teacher: early stopping, weight decay, label "
    "smoothing, margin losses.",
    "Using the weak model's own features together with the strong model's.",
    "Robustness: methods that transfer to held-out tasks, not only the hill-climbing task.",
)
