"""Runtime: the environment's ECR repository (encrypted with the environment's key, immutable tags, scanned
on push, with a lifecycle policy) and the project's runtime image, built from the `Dockerfile` and `uv.lock`
and pushed to it under its content-hash tag (`mlops_kit.runtime.image_tag`).

Every SageMaker job, the monitor and the endpoint run this one image. Its reference is computed from the
account, the region, the repository name and the tag alone, so it is known in a preview and is exactly the
string the pipeline definition names; the same sources give the same tag, hence no change in a preview.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from mlops_kit import runtime
from mlops_kit.infra.plans import images


@dataclass(frozen=True)
class RuntimeArgs:
    region: str
    account_id: pulumi.Input[str]
    repository_name: str  # naming.image_repository(settings)
    root: Path  # the project root: the build context, holding the Dockerfile
    image_tag: str  # runtime.image_tag(root), computed once by the caller
    kms_key_arn: pulumi.Input[str]
    force_delete: bool  # settings.storage.force_destroy: a disposable environment drops its images too
    keep_tagged_images: int
    tags: dict[str, str]


class Runtime(pulumi.ComponentResource):
    """The project's runtime image in the environment's own registry."""

    def __init__(self, name: str, args: RuntimeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:runtime:Runtime", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dockerfile = args.root / runtime.DOCKERFILE
        if not dockerfile.is_file():
            raise ValueError(f"Runtime {name}: {dockerfile} is missing; the runtime image is built from it")

        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            # a tag is a content hash that the pipeline definition and model packages name: it must never
            # be moved to other content
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            force_delete=args.force_delete,
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(images.lifecycle_policy(args.keep_tagged_images), sort_keys=True),
            opts=child,
        )

        self.image_uri: pulumi.Output[str] = pulumi.Output.from_input(args.account_id).apply(
            lambda account: runtime.image_uri(account, args.region, args.repository_name, args.image_tag)
        )
        registry = pulumi.Output.from_input(args.account_id).apply(
            lambda account: runtime.registry(account, args.region)
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
        image = docker_build.Image(
            f"{name}-image",
            push=True,
            # Relative to where Pulumi runs the program: the same in every checkout and on every runner,
            # so a new clone is no change (an absolute path would rebuild and re-push an immutable tag).
            context={"location": os.path.relpath(args.root)},
            dockerfile={"location": os.path.relpath(dockerfile)},
            platforms=[runtime.PLATFORM],
            tags=[self.image_uri],
            build_args=dict(images.BUILD_ARGS),
            registries=[
                {
                    "address": registry,
                    "username": token.user_name,
                    "password": pulumi.Output.secret(token.password),
                }
            ],
            cache_from=[{"gha": {"scope": images.CACHE_SCOPE}}],
            cache_to=[{"gha": {"scope": images.CACHE_SCOPE, "mode": "max"}}],
            # A pull request's preview proves the Dockerfile still builds; a preview never pushes, and an
            # unchanged context is no change at all, so nothing is built then.
            build_on_preview=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[repository]),
        )

        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.image_digest = image.digest
        self.register_outputs(
            {
                "image_uri": self.image_uri,
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "image_digest": self.image_digest,
            }
        )
