"""The torch (GPU) path of the cis workflow: the heavy products on a torch device, statistics on the host.

:func:`cis_device` turns a ``backend`` option (:func:`~tbeqtl.association.kernels.resolve_backend`'s
meaning: ``"auto"`` is torch on CUDA when available, else numpy; ``"torch"`` is CUDA if available,
else CPU torch; ``"torch-cpu"``) into a :class:`TorchDevice`, or None for numpy. ``"auto"`` does not
import torch on a machine without a GPU driver (:func:`~tbeqtl.association.mapping._auto_backend`).

What runs on the device:

- the permutation scan (:func:`~tbeqtl.association.cis_kernels.scan_permutations`): the float32
  block product ``z @ fl32(yp)^T``, its absolute value, column maxima, running lower bounds and
  the candidate selection (:class:`TorchScan`); only the candidates (variant, permutation,
  float32 value) and the final lower bounds come back. The permuted phenotypes are uploaded once
  per scan (once per phenotype in ``map_cis``), the float32 rows of a
  :class:`~tbeqtl.association.cis_kernels.WindowCache` block once per chromosome block;
- the nominal block GEMM ``<g, y_res>`` of the streamed nominal pass (float64), the residual
  phenotypes of a chromosome uploaded once (:meth:`TorchDevice.nominal_products`).

Everything else stays on the host in numpy float64: per-variant statistics, the exact float64
recomputation of the candidates, the nominal ``<g, u>`` of the window, every reported statistic.

Float32 on CUDA: the candidate rule relies on the error bound of an IEEE float32 dot product with
float32 accumulation (in any order, :func:`~tbeqtl.association.cis_kernels.scan_permutations`).
CUDA float32 GEMMs may use TF32 (10-bit mantissa) unless told not to: :meth:`TorchDevice.exact_float32`
sets ``torch.backends.cuda.matmul.allow_tf32 = False`` and float32 matmul precision ``"highest"``
for the duration of a run, and restores the previous settings after.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

__all__ = ["TorchDevice", "TorchScan", "cis_device", "device_scope"]

logger = logging.getLogger(__name__)


def cis_device(backend: str = "auto") -> TorchDevice | None:
    """Resolve a cis ``backend`` option.

    Parameters
    ----------
    backend
        ``"auto"``, ``"numpy"``, ``"torch"`` or ``"torch-cpu"``.

    Returns
    -------
    TorchDevice or None
        The torch device to run the products on, or None for numpy.

    Raises
    ------
    InputError
        Unknown backend.
    """
    from .mapping import _auto_backend

    name, device = _auto_backend(backend)
    logger.info("cis products on %s (%s)", name, device)
    return None if name == "numpy" else TorchDevice(device)


def device_scope(device: TorchDevice | None):
    """Context of a run on ``device``: :meth:`TorchDevice.exact_float32`, or nothing for numpy (None)."""
    return contextlib.nullcontext() if device is None else device.exact_float32()


class TorchDevice:
    """A torch device for the cis products.

    Parameters
    ----------
    device
        ``"cuda"`` or ``"cpu"``.
    """

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"TorchDevice({str(self.device)!r})"

    @property
    def is_cpu(self) -> bool:
        """Whether the device is the CPU (its threads then compete with the host's workers)."""
        return self.device.type == "cpu"

    def put(self, a: np.ndarray, *, dtype=np.float32):
        """Upload ``a`` as a contiguous tensor of ``dtype`` (float32 or float64)."""
        return self.torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(self.device)

    @contextlib.contextmanager
    def exact_float32(self):
        """IEEE float32 matmuls (no TF32) inside the block; previous settings restored after."""
        torch = self.torch
        tf32 = torch.backends.cuda.matmul.allow_tf32
        precision = torch.get_float32_matmul_precision()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        try:
            yield self
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.set_float32_matmul_precision(precision)

    @contextlib.contextmanager
    def host_threads(self, threads: int):
        """Hold CPU torch to ``threads`` intra-op threads inside the block (no-op on a GPU)."""
        if not self.is_cpu:
            yield self
            return
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(threads)
        try:
            yield self
        finally:
            self.torch.set_num_threads(before)

    def scan(self, yp: np.ndarray, *, keep_float32: bool = False) -> TorchScan:
        """Start a permutation scan of one window against ``yp`` (P x n float64, uploaded once as float32)."""
        return TorchScan(self, yp, keep_float32=keep_float32)

    def nominal_products(self, centred: np.ndarray, y_res, active: np.ndarray) -> np.ndarray:
        """``centred @ y_res[:, active]`` in float64 on the device (``y_res`` already uploaded).

        Parameters
        ----------
        centred
            Block of centred float64 dosages (variants x samples).
        y_res
            Device tensor, samples x phenotypes (float64 residual phenotypes of the chromosome).
        active
            Phenotype columns whose windows meet the block.

        Returns
        -------
        numpy.ndarray
            float64 products, variants x ``len(active)``.
        """
        idx = self.torch.from_numpy(np.asarray(active, dtype=np.int64)).to(self.device)
        out = self.put(centred, dtype=np.float64) @ y_res.index_select(1, idx)
        return out.cpu().numpy()


class TorchScan:
    """The float32 part of :func:`~tbeqtl.association.cis_kernels.scan_permutations` on a torch device.

    Same arithmetic as the host scan (``_NumpyScan`` in :mod:`.cis_kernels`): per block, ``r =
    |z @ fl32(yp)^T|`` (rescaled first when a factor is given), column maxima ``bm``, lower bounds
    ``L = max(L, bm - delta)``, and the pairs with ``r >= L_j - delta`` in the columns where
    ``bm + delta >= L``; every comparison in float32 as on the host.

    Parameters
    ----------
    dev
        The device.
    yp
        Unit residual permuted phenotypes, P x n float64.
    keep_float32
        Also keep the float32 column maxima (tests of the bound).
    """

    def __init__(self, dev: TorchDevice, yp: np.ndarray, *, keep_float32: bool = False):
        torch = dev.torch
        self.dev, self.torch = dev, torch
        self.n_perm = yp.shape[0]
        self.ypt = dev.put(yp.T)  # n x P float32, uploaded once
        self.lower = torch.full((self.n_perm,), -np.inf, dtype=torch.float32, device=dev.device)
        self.m32 = torch.zeros(self.n_perm, dtype=torch.float32, device=dev.device) if keep_float32 else None

    def block(self, z, scale: np.ndarray | None, delta: np.float32):
        """Scan one block of float32 rows ``z`` (a device tensor or a numpy array).

        Parameters
        ----------
        z
            m x n float32 rows.
        scale
            Per-row float32 rescale factors, or None.
        delta
            The block's float32 bound.

        Returns
        -------
        rows, cols : numpy.ndarray
            Candidate pairs (block row, permutation).
        values : numpy.ndarray
            Their float32 ``|r|``.
        """
        torch = self.torch
        if isinstance(z, np.ndarray):
            z = self.dev.put(z)
        d = float(delta)  # exactly a float32 value: the float32 ops below round as the host's
        r = z @ self.ypt
        if scale is not None:
            r.mul_(self.dev.put(scale)[:, None])
        r.abs_()
        bm = r.amax(dim=0)
        if self.m32 is not None:
            torch.maximum(self.m32, bm, out=self.m32)
        torch.maximum(self.lower, bm - d, out=self.lower)
        cols = torch.nonzero(bm + d >= self.lower).squeeze(1)
        if not cols.numel():
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float32)
        sub = r if cols.numel() == self.n_perm else r.index_select(1, cols)
        rows, cc = torch.nonzero(sub >= (self.lower.index_select(0, cols) - d)[None, :], as_tuple=True)
        values = sub[rows, cc]
        return rows.cpu().numpy(), cols[cc].cpu().numpy(), values.cpu().numpy()

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the float32 lower bounds per permutation and the float32 maxima (or None), on the host."""
        m32 = None if self.m32 is None else self.m32.cpu().numpy()
        return self.lower.cpu().numpy(), m32
