"""The Pulumi program, shipped in the kit: one component per capability, composed by `stack.main()`.

A project's `infra/__main__.py` only calls `mlops_kit.infra.stack.main()`; the policy pack that
`pulumi preview/up --policy-pack` runs is `policy/` here (`mlops infra policy-path` prints its folder).
"""
