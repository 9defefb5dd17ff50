"""The older home of the data helpers, kept so that old imports work: fetching
is in :mod:`dflib.data.download`, the dataset base in :mod:`dflib.data.base`."""

from dflib.data.base import (  # noqa: F401
    AugmentConfig,
    FocalStackDataset,
    LazyH5,
    augment_sample,
    choose_planes,
    make_sample,
    sample_generator,
)
from dflib.data.download import (  # noqa: F401
    ENV_VAR,
    LOCAL_REGISTRY_NAME,
    REGISTRY_RESOURCE,
    ChecksumMismatchError,
    DatasetNotFoundError,
    data_dir,
    extract_zip,
    fetch_file,
    file_sha256,
    load_registry,
    run_fetch,
    verify_sha256,
)
