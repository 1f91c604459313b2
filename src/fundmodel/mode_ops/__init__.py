"""Changes of the stage-validation mode made through the ops API: Alertmanager's auto-downgrade and operators.

The routes in ``fundmodel.api.routes.ops`` stay thin: they authenticate, parse and call in here.
"""
