"""(being written)"""

from flask_smorest import Blueprint

URL = "/tenant/exports"
blp = Blueprint("exports", __name__)
