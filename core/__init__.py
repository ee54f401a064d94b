"""What the apps share and import: the API conventions, domain errors, health checks, cache and database
helpers. It imports no app, so no arrow runs from an app back up into the project shell (`notifyhub/`)."""
