"""Signed official-document dispatch (Decision 70/2009/QĐ-UBND: the electronic
copy of a paper document goes to every agency under "Nơi nhận"), distribution
groups, and the S/MIME step of the SMTP data path."""
