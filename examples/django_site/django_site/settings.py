"""Settings of the pbxis example site: just enough for a management command."""
import os

SECRET_KEY = "pbxis-example-not-secret"
DEBUG = True
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["callcenter"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

#: Where Asterisk's AMI is: ami://user:secret@host:port (keep the secret out
#: of the code: here it comes from the environment).
PBXIS_URL = os.environ.get("PBXIS_URL", "")
