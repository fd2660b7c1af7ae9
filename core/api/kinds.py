"""(being written)"""

from flask_smorest import Blueprint

URL = "/kinds"
blp = Blueprint("kinds", __name__)
