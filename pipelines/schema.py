"""The raw transactions' schema: what the validate step accepts. Thresholds live in the settings."""

from mlops_kit.validation import Column

LABEL = "is_fraud"
ID = "transaction_id"
EVENT_TIME = "event_time"

RAW_SCHEMA: dict[str, Column] = {
    ID: Column("string", unique=True),
    "customer_id": Column("string"),
    "card_id": Column("string", nullable=True),
    EVENT_TIME: Column("timestamp", minimum="2000-01-01", maximum="2100-01-01", not_future=True),
    "amount": Column("float", minimum=0.01, maximum=1_000_000),
    "merchant_category": Column("string"),
    "channel": Column("string", domain=("pos", "online", "atm")),
    "hour": Column("int", minimum=0, maximum=23),
    "customer_tenure_days": Column("int", minimum=0, maximum=36_500),
    LABEL: Column("int", domain=(0, 1), label=True),
}
