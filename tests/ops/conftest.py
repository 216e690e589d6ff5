from tests.renewals.conftest import worker_factory  # noqa: F401 - a fixture
