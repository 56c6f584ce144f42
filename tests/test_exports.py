"""The top level exports exactly the names of API.md, and each is documented."""
from __future__ import annotations

import pbxis

API_NAMES = {
    "connect", "ami_connect", "ami_disconnect", "Pbx", "Event", "EventChannel",
    "Subscription", "Response", "PBXISError", "ConnectError", "AuthenticationError",
    "NotConnectedError", "ActionError", "ActionTimeout", "NoCallError", "AmbiguousCallError",
    "__version__",
}


def test_all_is_exactly_the_api():
    assert set(pbxis.__all__) == API_NAMES
    for name in pbxis.__all__:
        assert hasattr(pbxis, name)


def test_public_names_have_docstrings():
    for name in API_NAMES - {"__version__"}:
        assert getattr(pbxis, name).__doc__, name


def test_error_tree():
    assert issubclass(pbxis.ConnectError, ConnectionError)
    assert issubclass(pbxis.NotConnectedError, ConnectionError)
    assert issubclass(pbxis.ActionTimeout, TimeoutError)
    for name in ("ConnectError", "AuthenticationError", "NotConnectedError", "ActionError",
                 "ActionTimeout", "NoCallError", "AmbiguousCallError"):
        assert issubclass(getattr(pbxis, name), pbxis.PBXISError)


def test_aliases_of_the_original_library():
    assert pbxis.ami_connect is pbxis.connect
    assert callable(pbxis.ami_disconnect)


def test_version_is_a_string():
    assert isinstance(pbxis.__version__, str) and pbxis.__version__.count(".") == 2
