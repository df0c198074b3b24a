"""Snap stores: a client for the Snap Store API and a self-hosted store.

Client (:mod:`ucimage.store.client`), the API ``ucimage snap`` builds on::

    from ucimage.store.client import StoreClient, SnapRequest
    from ucimage.assertions import Database, load_assertion_files

    with StoreClient(url=None) as client:          # --store, else UBUNTU_STORE_URL,
        resolved = client.resolve([                 # SNAPPY_FORCE_API_URL, api.snapcraft.io
            SnapRequest("snapd"),
            SnapRequest("pc", channel="22/stable"),
            SnapRequest("core22", revision=3),
        ])                                          # ONE POST /v2/snaps/refresh
        db = Database(extra_trusted=load_assertion_files(["root.assert"]))
        fetched = client.fetch(resolved, "out/snaps", db=db)

* ``StoreClient(url=None, *, sas_url=None, arch=None, store_id=None, auth=None,
  cache_dir=None, use_cache=True, json_retry=JSON_RETRY, download_retry=DOWNLOAD_RETRY,
  parallel=4, progress=None, env=None)``.  Environment: ``UBUNTU_STORE_URL`` /
  ``SNAPPY_FORCE_API_URL`` (API base), ``SNAPPY_FORCE_SAS_URL`` (assertions base),
  ``UBUNTU_STORE_AUTH`` / ``UBUNTU_STORE_AUTH_DATA_FILENAME`` (Authorization),
  ``UBUNTU_STORE_ID`` (Snap-Device-Store), ``UBUNTU_STORE_ARCH``, ``SNAPPY_STORE_NO_CDN``.
  Headers are snapd's (``Snap-Device-*`` on /v2/snaps, ``X-Ubuntu-*`` on assertions and
  downloads).  Progress bars (rich) only when stderr is a terminal (or ``progress=True``).
* ``resolve(requests, *, ignore_validation=None) -> list[ResolvedSnap]`` in request order;
  raises ``SnapNotFoundError``, ``RevisionNotFoundError`` (hint: where it is released),
  ``StoreHTTPError``, ``StoreUnavailableError`` (after snapd's retries).
* ``ResolvedSnap``: ``name, snap_id, revision, url, sha3_384`` (hex), ``size, version, type,
  base, architectures, confinement, channel`` (effective), ``redirect_channel,
  publisher_id, snap_yaml, epoch``; ``.sha3_384_b64url``, ``.filename`` (``NAME_REV.snap``),
  ``.to_json()``.
* ``fetch(resolved, dest=None, *, db=None, trusted=(), verify=True) -> list[FetchedSnap]``:
  parallel downloads with ``Range`` resume of ``NAME_REV.snap.partial``, size and SHA3-384
  check (one fresh retry on mismatch, then ``DigestMismatchError``), then the snap-revision
  and its prerequisites (``GET /v2/assertions/...``), checked by *db* (default: built-in +
  configured roots + *trusted*) plus snapd's cross-checks (size, snap-id, revision, name);
  ``VerificationError`` otherwise.  With ``dest=None`` the files stay in the cache.
* ``FetchedSnap``: ``resolved, path, assertions`` (non-trusted chain, prerequisites first,
  the snap-revision last), ``from_cache, verified``; ``.assertion_stream() -> bytes``
  (the ``.assert`` file).
* Lower level: ``download(resolved, target)``, ``get_assertion(ref)``,
  ``fetch_assertions(resolved, db)``, ``verify(resolved, path, db)``; ``client.stats``
  counts requests, bytes and cache hits.
* Cache: ``$XDG_CACHE_HOME/ucimage/snaps/<sha3-384 hex>.snap`` (read-only; copied into *dest*) and
  ``.../assertions/<type>/<key>@<max-format>.assert``: a rebuild makes no downloads and no
  assertion requests (only the refresh POST).

Self-hosted store (:mod:`ucimage.store.server`): ``init_store``, ``Store``, ``create_app``,
``serve``; admin client :class:`ucimage.store.admin.StoreAdmin` (push, release, list,
add-assertion).  Channels: :func:`ucimage.store.channels.parse_channel`.
Errors (:mod:`ucimage.store.errors`): ``StoreError`` and subclasses, all ``UcimageError``.
"""
