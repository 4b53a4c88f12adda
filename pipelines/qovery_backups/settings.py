"""Defaults and constants of the Qovery backups connector."""

from datetime import timedelta

DEFAULT_BASE_URL = "https://api.qovery.com"

# The backup list endpoint always serves pages of this many backups; the response also
# states its page size, and that value wins when present.
DEFAULT_PAGE_SIZE = 20

# A safety stop for one database's paging. 10,000 pages of 20 is 200,000 backups, far more
# than a database keeps, so reaching it means the server is misbehaving.
MAX_PAGES_PER_DATABASE = 10_000

# Backups move from QUEUED to ONGOING to SUCCESS or ERROR after they are created, and large
# databases take hours to back up. Re-reading the last day on every run merges those late
# status changes, including on backups that have no `updated_at`, at the cost of one page
# as long as fewer than 20 backups were created in that day.
DEFAULT_LOOKBACK = timedelta(hours=24)

PIPELINE_NAME = "qovery_backups"
DATASET_NAME = "qovery"
DESTINATION = "duckdb"
SOURCE_NAME = "qovery"

BACKUPS_TABLE = "backups"
DATABASES_TABLE = "databases"
BACKUP_STEPS_TABLE = "backups__status__steps__details"

REQUEST_TIMEOUT_SECONDS = 30.0
USER_AGENT = "qovery-backups (dlt connector)"
