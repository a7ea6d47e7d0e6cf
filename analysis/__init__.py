"""Does one arm reach a higher PGR than another by time t? Records → frames → participant
curves → the arm comparison, figures and the report. The names most analyses need:"""

from analysis.curves import ENDPOINTS, participant_curves
from analysis.endpoint import compare_arms, participant_endpoint
from analysis.frames import AXES, Prices, attempts_frame
from analysis.palette import arm_color

__all__ = ["AXES", "ENDPOINTS", "Prices", "arm_color", "attempts_frame", "compare_arms",
           "participant_curves", "participant_endpoint"]
