"""(being written)"""

from flask_smorest import Blueprint

URL = "/members"
blp = Blueprint("members", __name__)
