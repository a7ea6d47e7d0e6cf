import ssl

import pytest

from tests.e2e.conftest import server  # noqa: F401 - the live study server fixture


@pytest.fixture
def test_ca(tmp_path):
    """A certificate authority made for the test: (a server context for `localhost` signed by
    it, the CA's PEM file for clients to trust). Nothing else trusts it."""
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    pem = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return context, str(pem)
