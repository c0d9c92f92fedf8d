"""Spam rules without DNS: text normalisation against evasions
(``normalize``), link and sender hosts (``hosts``), phrase topics
(``phrases``) and the named, scored rules over them (``engine``), which
``policy.checks.spam`` runs."""
