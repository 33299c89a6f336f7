from projects.management.commands.start_model import ModelServingCommand
from projects.proposals.rekognition import stop_model


class Command(ModelServingCommand):
    help = "Stop a running Rekognition Custom Labels model version so it stops being billed."
    action = staticmethod(stop_model)
