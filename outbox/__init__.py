"""One outbox for every email the product sends (issue 16).

An email is a row written in the same transaction as the event that causes
it; ``outbox.delivery`` claims rows with SKIP LOCKED and a lease, sends them
outside any transaction over one SMTP connection per batch, marks each one,
retries with backoff (``outbox.policy``) and fails them on a 5xx refusal or
after EMAIL_MAX_ATTEMPTS. Each kind of email is a ``delivery.Queue``: the
renewal notifications (``renewals.notifications``), the complaint replies
(``complaints.outbox``) and the plain emails of this app's ``Email`` model
(invitations, alerts: ``outbox.services.email_queue``).
"""
