"""(being written)"""

from flask_smorest import Blueprint

URL = "/plugins"
blp = Blueprint("plugins", __name__)
