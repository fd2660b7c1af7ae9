"""(being written)"""

from flask_smorest import Blueprint

URL = "/staff"
blp = Blueprint("staff", __name__)
