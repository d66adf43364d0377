"""FedDDPM's server-side calibration on auxiliary data, one implementation for both federations.

:class:`~feddiff.calibration.calibrator.ServerCalibrator` runs after aggregation:
FedDDPM (``trigger: every_round``) trains the global model on the auxiliary set every
round; FedDDPM+ (``trigger: stall``) only when the global model's auxiliary loss has
stopped improving (:class:`~feddiff.calibration.stall.StallDetector`). The objective
is what differs between federations: cross-entropy for the classifier
(:class:`ClassifierObjective`, through the ``fedddpm`` strategy) and the denoising
loss for the federated DDPM (:class:`DenoisingObjective`, as a server hook of the
diffusion loop).

Only the torch-free parts are imported here: the config checks read
:class:`CalibrationParams` when the DAG is built, without torch. The calibrator and
the classifier's objective are in :mod:`feddiff.calibration.calibrator` (torch), the
DDPM's objective beside the DDPM loss in :mod:`feddiff.diffusion.ddpm` (diffusers).
"""

from feddiff.calibration.params import CalibrationParams
from feddiff.calibration.stall import StallDetector

__all__ = ["CalibrationParams", "StallDetector"]
