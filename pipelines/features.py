"""The feature groups of the fraud use case: the single source for infra, the pipeline and serving."""

from mlops_kit.features import Feature, FeatureGroup, FeatureType

INT, FLOAT, STR = FeatureType.INTEGRAL, FeatureType.FRACTIONAL, FeatureType.STRING

CUSTOMER_PROFILE = FeatureGroup(
    name="customer-profile",
    description="Slow-moving facts about a customer.",
    record_identifier=Feature("customer_id", STR),
    event_time=Feature("event_time", STR),
    features=(
        Feature("tenure_days", INT, "days since the customer joined"),
        Feature("home_channel", STR, "the channel the customer uses most"),
    ),
)

TRANSACTION_AGGREGATES = FeatureGroup(
    name="transaction-aggregates",
    description="Rolling spend per customer over 1 h, 24 h and 7 d windows, as of each transaction.",
    record_identifier=Feature("customer_id", STR),
    event_time=Feature("event_time", STR),
    features=(
        Feature("txn_count_1h", INT),
        Feature("txn_count_24h", INT),
        Feature("txn_count_7d", INT),
        Feature("amount_sum_1h", FLOAT),
        Feature("amount_sum_24h", FLOAT),
        Feature("amount_mean_7d", FLOAT),
    ),
)

FEATURE_GROUPS = (CUSTOMER_PROFILE, TRANSACTION_AGGREGATES)
