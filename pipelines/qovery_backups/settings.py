"""Defaults and constants of the Qovery backups connector."""

from datetime import timedelta

DEFAULT_BASE_URL = "https://api.qovery.com"

# The backup list endpoint always serves pages of this many backups; the response also
# states its page size, and that value wins when present.
DEFAULT_PAGE_SIZE = 20

# A safety stop for one database's paging. 10,000 pages of 20 is 200,000 backups, far more
# than a database keeps, so reaching it means the server is misbehaving.
MAX_PAGES_PER_DATABASE = 10_000

# How far before a database's cursor each run loads backups again. Backups still in flight
# are followed on their own (see incremental.py). The lookback covers three other cases: an
# outcome reported late on a backup never marked in flight, an `updated_at` written a little
# before it became visible, and clock skew. Six hours costs one page per run while a
# database makes fewer than 20 backups in six hours.
DEFAULT_LOOKBACK = "6h"

# How often each database's whole history is read again. Incremental runs cannot see a change
# to a backup older than the lookback (a retention job moving it to DELETED) nor a deleted
# backup. A weekly full scan of a database with 1,000 backups costs 51 requests.
FULL_SCAN_EVERY = "7d"

# A backup still QUEUED or ONGOING this long before the cursor is taken as stuck, and is no
# longer followed on every run.
MAX_PENDING_AGE = timedelta(days=7)

# Databases read at once. The requests of all of them share one pacer, so concurrency
# shortens waits on latency without raising the request rate above the budget.
CONCURRENCY = 4

# Limits of one load package. A run interrupted by an error, Ctrl-C or a kill keeps every
# finished package. Each package adds about 0.3 s of dlt bookkeeping, and peak memory grows
# with its size (measured in docs/benchmarks.md): a package stops taking new databases once
# it holds BACKUPS_PER_EXTRACT backups, and databases already being read finish in it.
DATABASES_PER_EXTRACT = 50
BACKUPS_PER_EXTRACT = 10_000

PIPELINE_NAME = "qovery_backups"
DATASET_NAME = "qovery"
DESTINATION = "duckdb"
SOURCE_NAME = "qovery"

BACKUPS_TABLE = "backups"
DATABASES_TABLE = "databases"
BACKUP_STEPS_TABLE = "backups__status__steps__details"

CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 30.0

# Qovery documents about 1000 requests per hour per token. The default leaves a tenth of it
# to other tools using the same token.
REQUESTS_PER_HOUR = 900

# Retries of one request: attempts in total, and the most time spent waiting between them.
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT_SECONDS = 600.0
RETRY_BACKOFF_SECONDS = 1.0
USER_AGENT = "qovery-backups (dlt connector)"
