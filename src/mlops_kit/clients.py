"""AWS clients acting in one environment's account: `clients_for(settings)`, decided once.

In AWS, the credentials come from the default chain (in CI, the stage's deploy role assumed over OIDC);
when the settings pin an account (`aws:allowedAccountIds`), calls made with credentials of another account
are refused before anything happens. On the embedded runtime every client points at the emulator, and an
environment whose account is not the emulator's default acts through `sts:AssumeRole` into its own deploy
role there: moto keeps each account's resources apart under such credentials, so a stage in account
222222222222 neither sees nor is seen by one in 123456789012, as in AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_kit import naming
from mlops_kit.settings import EMULATOR_ACCOUNT, Settings


class ClientsError(RuntimeError):
    """No clients for the environment: no emulator, or credentials for another account."""


@dataclass(frozen=True)
class Clients:
    """A client factory (`clients("s3")`) for one environment; `environ()` gives a subprocess the same."""

    region: str
    endpoint_url: str | None = None
    credentials: Mapping[str, str] | None = None  # None: the default chain (or the emulator's test keys)
    account_id: str = ""
    principal: str = ""  # the role the calls are made as, when the kit assumed one
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A client of `service`; made once per service (botocore clients are thread-safe, and making
        one costs ~0.1 s)."""
        if kwargs:
            return self._make(service, **kwargs)
        if service not in self._cache:
            self._cache[service] = self._make(service)
        return self._cache[service]

    def _make(self, service: str, **kwargs: Any) -> Any:
        from mlops_kit import emulator as emu

        keys = dict(self.credentials or {})
        if self.endpoint_url is None:
            return emu.client(service, endpoint_url=None, region=self.region, **keys, **kwargs)
        if not keys:
            return emu.client(service, endpoint_url=self.endpoint_url, region=self.region, **kwargs)
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}
        )
        return boto3.client(
            service, region_name=self.region, endpoint_url=self.endpoint_url, config=config, **keys, **kwargs
        )

    __call__ = client

    def as_role(self, role_arn: str, session: str = "SageMaker") -> Clients:
        """Clients acting as `role_arn`, as an AWS service that runs a job or an endpoint with the role
        gets them (its AssumeRole is the service's, not the kit's: the access ledger does not record it)."""
        from mlops_kit.iam import record

        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else self.account_id
        with record.unrecorded():
            return assume(self, role_arn, account, session)

    def environ(self) -> dict[str, str]:
        """Variables pointing an AWS SDK in a subprocess at the same endpoint, as the same principal."""
        from mlops_kit import emulator as emu

        found = emu.aws_environ(self.endpoint_url, self.region) if self.endpoint_url else {}
        if self.credentials:
            found.update(
                AWS_ACCESS_KEY_ID=self.credentials["aws_access_key_id"],
                AWS_SECRET_ACCESS_KEY=self.credentials["aws_secret_access_key"],
                AWS_SESSION_TOKEN=self.credentials.get("aws_session_token", ""),
            )
        return found


def clients_for(settings: Settings, emulator: Any = None) -> Clients:
    """Clients acting in `settings`' account: the emulator's when embedded (`emulator`, else the running
    one), AWS's default chain otherwise."""
    if not settings.embedded:
        return Clients(region=settings.region, account_id=settings.account_id)
    if emulator is None:
        from mlops_kit import emulator as emu

        emulator = emu.running()
        if emulator is None:
            raise ClientsError(
                f"no emulator running: environment {settings.env} lives there; run `mlops emulator start` first"
            )
    base = Clients(region=settings.region, endpoint_url=emulator.endpoint_url, account_id=EMULATOR_ACCOUNT)
    if settings.account_id in ("", EMULATOR_ACCOUNT):
        return base
    return assume(base, role_arn(settings), settings.account_id)


def role_arn(settings: Settings) -> str:
    """The environment's deploy role: the principal its promotions and deployments act as."""
    return f"arn:aws:iam::{settings.account_id}:role/{naming.deploy_role(settings)}"


def assume(base: Clients, role: str, account_id: str, session: str = "mlops-kit") -> Clients:
    """`base`'s principal assumes `role`; the returned clients act as it."""
    answer = base.client("sts").assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    keys = {
        "aws_access_key_id": answer["AccessKeyId"],
        "aws_secret_access_key": answer["SecretAccessKey"],
        "aws_session_token": answer["SessionToken"],
    }
    return Clients(
        region=base.region,
        endpoint_url=base.endpoint_url,
        credentials=keys,
        account_id=account_id,
        principal=role,
    )


def check_account(settings: Settings, client: Any) -> str:
    """The account the clients act in; refused when the settings pin another one."""
    account = client("sts").get_caller_identity()["Account"]
    if settings.account_id and account != settings.account_id:
        raise ClientsError(
            f"the AWS credentials are for account {account}, but {naming_file(settings)} pins "
            f"aws:allowedAccountIds to {settings.account_id}: act as {role_arn(settings)}"
        )
    return account


def naming_file(settings: Settings) -> str:
    try:
        from pathlib import Path

        return str(settings.file.relative_to(Path.cwd()))
    except ValueError:
        return str(settings.file)
