"""Pure decisions of the infra program: tags, IAM documents, alarm, schedule and storage specs.

Nothing here touches Pulumi resources: every function takes plain values and returns plain values, so
each rule is unit tested without mocks, and the components only carry the decisions out.
"""
