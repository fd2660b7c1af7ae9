"""(being written)"""

from flask_smorest import Blueprint

URL = "/records"
blp = Blueprint("records", __name__)
