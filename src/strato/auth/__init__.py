"""Authentication: which principal sent a request.

Requests to the API are signed with AWS Signature Version 4 (``sigv4``) using access keys
that strato issues itself (``credentials``), kept in the data dir (``credential_file``) and
looked up in memory on every request (``store``). ``strato.services.authorization`` then
decides what the principal may do.
"""
