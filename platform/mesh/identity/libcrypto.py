"""A workload's key and CSR, made by the OpenSSL library the ``ssl`` module has loaded.

Every process that speaks TLS has libcrypto mapped already; asking it for an ECDSA
P-256 key and a CSR through ``ctypes`` costs nothing more, where importing
``cryptography`` (its own copy of OpenSSL and its Python layer) costs a replica proxy
about 12 MB of memory. The result is what ``csr.make_csr`` makes: a PKCS#8 key and a PEM
CSR whose only name is the identity (its CN when it fits, the SAN either way, critical
when the subject is empty).

``new_key_and_csr`` uses libcrypto when it can be reached (OpenSSL 1.1.1 or 3, whose
functions used here are the same) and ``cryptography`` otherwise.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

_EVP_PKEY_EC = 408  # NID_X9_62_id_ecPublicKey
_EVP_PKEY_OP_PARAMGEN_KEYGEN = (1 << 1) | (1 << 2)
_EVP_PKEY_CTRL_EC_PARAMGEN_CURVE_NID = 0x1000 + 1
_NID_PRIME256V1 = 415
_NID_SUBJECT_ALT_NAME = 85
_MBSTRING_ASC = 0x1000 | 1
_BIO_CTRL_INFO = 3
_COMMON_NAME_LIMIT = 64  # as csr.subject_for: a longer identity leaves the subject empty

_P = ctypes.c_void_p
_INT = ctypes.c_int
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "EVP_PKEY_CTX_new_id": (_P, [ctypes.c_int, _P]),
    "EVP_PKEY_keygen_init": (ctypes.c_int, [_P]),
    "EVP_PKEY_CTX_ctrl": (
        ctypes.c_int,
        [_P, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, _P],
    ),
    "EVP_PKEY_keygen": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
    "EVP_PKEY_CTX_free": (None, [_P]),
    "EVP_PKEY_free": (None, [_P]),
    "X509_REQ_new": (_P, []),
    "X509_REQ_free": (None, [_P]),
    "X509_REQ_set_version": (ctypes.c_int, [_P, ctypes.c_long]),
    "X509_REQ_get_subject_name": (_P, [_P]),
    "X509_NAME_add_entry_by_txt": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, _INT, ctypes.c_char_p, _INT, _INT, _INT],
    ),
    "X509_REQ_set_pubkey": (ctypes.c_int, [_P, _P]),
    "X509V3_EXT_conf_nid": (_P, [_P, _P, ctypes.c_int, ctypes.c_char_p]),
    "X509_EXTENSION_free": (None, [_P]),
    "OPENSSL_sk_new_null": (_P, []),
    "OPENSSL_sk_push": (ctypes.c_int, [_P, _P]),
    "OPENSSL_sk_free": (None, [_P]),
    "X509_REQ_add_extensions": (ctypes.c_int, [_P, _P]),
    "EVP_sha256": (_P, []),
    "X509_REQ_sign": (ctypes.c_int, [_P, _P, _P]),
    "BIO_s_mem": (_P, []),
    "BIO_new": (_P, [_P]),
    "BIO_free": (ctypes.c_int, [_P]),
    "BIO_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, _P]),
    "PEM_write_bio_X509_REQ": (ctypes.c_int, [_P, _P]),
    "PEM_write_bio_PKCS8PrivateKey": (
        ctypes.c_int,
        [_P, _P, _P, ctypes.c_char_p, ctypes.c_int, _P, _P],
    ),
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
    "ERR_clear_error": (None, []),
}


class LibcryptoError(Exception):
    """libcrypto refused a step; the message names it and OpenSSL's reason."""


class Libcrypto:
    """The functions used here, typed, from one loaded libcrypto."""

    def __init__(self, library: ctypes.CDLL) -> None:
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(library, name)  # AttributeError: not this library
            function.restype = restype
            function.argtypes = argtypes
            setattr(self, name, function)

    def __getattr__(self, name: str) -> Any:
        # only reached for names __init__ did not set: tells type checkers that the
        # functions above are attributes of their own
        raise AttributeError(name)

    def check(self, result: object, step: str) -> None:
        """Raise LibcryptoError (with OpenSSL's reason) when a step failed."""
        if result is None or (isinstance(result, int) and result <= 0):
            code = self.ERR_get_error()
            reason = ""
            if code:
                buffer = ctypes.create_string_buffer(256)
                self.ERR_error_string_n(code, buffer, len(buffer))
                reason = ": " + buffer.value.decode("ascii", "replace")
            self.ERR_clear_error()  # leave nothing behind for the ssl module to misreport
            raise LibcryptoError(f"libcrypto {step} failed{reason}")

    def pem(self, write: Any, thing: int, *extra: Any) -> str:
        """What ``write(bio, thing, *extra)`` writes, as text."""
        bio = self.BIO_new(self.BIO_s_mem())
        self.check(bio, "BIO_new")
        try:
            self.check(write(bio, thing, *extra), write.__name__)
            data = _P()
            size = self.BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
            self.check(size, "BIO_get_mem_data")
            return ctypes.string_at(data, size).decode("ascii")
        finally:
            self.BIO_free(bio)

    def key_and_csr(self, identity: str) -> tuple[str, str]:
        key = self._new_key()
        try:
            write_key = self.PEM_write_bio_PKCS8PrivateKey
            key_pem = self.pem(write_key, key, None, None, 0, None, None)  # not encrypted
            return key_pem, self._csr(identity, key)
        finally:
            self.EVP_PKEY_free(key)

    def _new_key(self) -> int:
        context = self.EVP_PKEY_CTX_new_id(_EVP_PKEY_EC, None)
        self.check(context, "EVP_PKEY_CTX_new_id")
        try:
            self.check(self.EVP_PKEY_keygen_init(context), "EVP_PKEY_keygen_init")
            self.check(
                self.EVP_PKEY_CTX_ctrl(
                    context,
                    _EVP_PKEY_EC,
                    _EVP_PKEY_OP_PARAMGEN_KEYGEN,
                    _EVP_PKEY_CTRL_EC_PARAMGEN_CURVE_NID,
                    _NID_PRIME256V1,
                    None,
                ),
                "choosing curve P-256",
            )
            key = _P()
            self.check(self.EVP_PKEY_keygen(context, ctypes.byref(key)), "EVP_PKEY_keygen")
            self.check(key.value, "EVP_PKEY_keygen")
            assert key.value is not None
            return key.value
        finally:
            self.EVP_PKEY_CTX_free(context)

    def _csr(self, identity: str, key: int) -> str:
        name = identity.encode("ascii")
        request = self.X509_REQ_new()
        self.check(request, "X509_REQ_new")
        try:
            self.check(self.X509_REQ_set_version(request, 0), "X509_REQ_set_version")
            named = len(identity) <= _COMMON_NAME_LIMIT
            if named:
                subject = self.X509_REQ_get_subject_name(request)
                self.check(
                    self.X509_NAME_add_entry_by_txt(subject, b"CN", _MBSTRING_ASC, name, -1, -1, 0),
                    "setting the common name",
                )
            self.check(self.X509_REQ_set_pubkey(request, key), "X509_REQ_set_pubkey")
            value = (b"" if named else b"critical,") + b"DNS:" + name
            extension = self.X509V3_EXT_conf_nid(None, None, _NID_SUBJECT_ALT_NAME, value)
            self.check(extension, "making the subjectAltName")
            extensions = self.OPENSSL_sk_new_null()
            try:
                self.check(extensions, "OPENSSL_sk_new_null")
                self.check(self.OPENSSL_sk_push(extensions, extension), "OPENSSL_sk_push")
                self.check(
                    self.X509_REQ_add_extensions(request, extensions), "X509_REQ_add_extensions"
                )
            finally:
                self.OPENSSL_sk_free(extensions)
                self.X509_EXTENSION_free(extension)
            self.check(self.X509_REQ_sign(request, key, self.EVP_sha256()), "X509_REQ_sign")
            return self.pem(self.PEM_write_bio_X509_REQ, request)
        finally:
            self.X509_REQ_free(request)


_loaded: Libcrypto | None = None
_tried = False
_lock = threading.Lock()


def libcrypto() -> Libcrypto | None:
    """The libcrypto ``ssl`` uses (else the system's), or None when none can be used."""
    global _loaded, _tried
    with _lock:
        if not _tried:
            _tried = True
            _loaded = _load()
        return _loaded


def _load() -> Libcrypto | None:
    import _ssl

    for where in ("ssl", "system"):
        if where == "ssl":
            candidate = getattr(_ssl, "__file__", None)
        else:
            from ctypes.util import find_library  # imports tempfile and more: not unless needed

            candidate = find_library("crypto")
        if not candidate:
            continue
        try:
            # symbols are looked up through the library's dependencies: _ssl's libcrypto
            return Libcrypto(ctypes.CDLL(candidate))
        except (OSError, AttributeError):
            continue
    return None


def new_key_and_csr(identity: str) -> tuple[str, str]:
    """A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR for ``identity`` signed with it."""
    found = libcrypto()
    if found is not None:
        try:
            return found.key_and_csr(identity)
        except LibcryptoError:
            pass  # cryptography below says what is wrong, or does it
    from fnmesh.platform.mesh.identity.csr import make_csr

    request = make_csr(identity)
    return request.key_pem, request.csr_pem
