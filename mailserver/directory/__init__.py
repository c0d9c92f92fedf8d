"""The electronic directory (danh bạ điện tử) of Decision 70/2009/QĐ-UBND.

``naming`` holds the address rule (Điều 4), ``service`` the lifecycle of
agencies, persons and their mailboxes (Điều 5, Điều 7, Điều 10), ``passwords``
the password rules (Điều 9 khoản 1), ``importer`` the CSV import, ``export`` the
published directory (Điều 5 khoản 5), ``archive`` the mail export on offboarding,
``sender`` the sender-alignment policy for agency addresses, ``names`` the
normalisation of agency names (short forms, notes, search ranking) that
dispatch and both searches share, and ``aliases`` the other names of agencies.

Kept free of imports so ``mailserver.config`` can import ``settings`` cheaply.
"""
