"""Block-wise token masking for the mask encoder (paper eq. 5 and 14).

Masks are drawn over the h x w token grid BEiT-style (rectangular blocks of random area and
aspect ratio) and shared by every time step of the window ("tube" masks), so that the mask
encoder cannot see a masked patch through a neighbouring frame (paper section 3.3).
:func:`pixel_tube_mask` and :func:`mask_pixels` carry a token mask onto the frames, for masking
before the cube embedding (the paper's order) rather than on its output tokens.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmaction.registry import MODELS
from torch import Tensor


def _uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    return torch.empty(()).uniform_(low, high, generator=generator).item()


def _randint(low: int, high: int, generator: Optional[torch.Generator]) -> int:
    """An integer in [low, high)."""
    return int(torch.randint(low, high, (), generator=generator).item())


def _four_neighbours(mask: Tensor) -> Tensor:
    """Cells that share an edge with a True cell of ``mask`` (h, w)."""
    neighbours = torch.zeros_like(mask)
    neighbours[1:, :] |= mask[:-1, :]
    neighbours[:-1, :] |= mask[1:, :]
    neighbours[:, 1:] |= mask[:, :-1]
    neighbours[:, :-1] |= mask[:, 1:]
    return neighbours


@MODELS.register_module()
class BlockMaskGenerator:
    """BEiT-style block-wise mask over an h x w grid with an exact number of masked cells.

    Exactly ``round(mask_ratio * h * w)`` cells are masked. Blocks are drawn one at a time: an
    area uniform in [min_num_patches, min(remaining, max_num_patches)], a log-uniform aspect
    ratio in [min_aspect, max_aspect], a uniform position; a block is kept when it masks at least
    one new cell and no more than the number still missing. When blocks stop fitting (fewer
    missing cells than ``min_num_patches``, or ``max_attempts`` rejected blocks in a row), the
    masked region is grown by random unmasked cells bordering it until the count is exact (BEiT
    itself stops short in that case; the paper's eq. 14 needs two exact halves).

    Randomness comes from the ``generator`` passed to a call, else from a private generator
    seeded with ``seed``, else from torch's global RNG.

    Args:
        input_size (Sequence[int] or int): Grid (h, w). Defaults to (8, 8).
        mask_ratio (float): Fraction of cells to mask, gamma. Defaults to 0.5.
        min_num_patches (int): Smallest block area. Defaults to 4.
        max_num_patches (int, optional): Largest block area; unbounded when None.
        min_aspect (float): Smallest block aspect ratio (height / width). Defaults to 0.3.
        max_aspect (float, optional): Largest aspect ratio; ``1 / min_aspect`` when None.
        max_attempts (int): Rejected blocks in a row before growing instead. Defaults to 10.
        seed (int, optional): Seed of the private generator. Defaults to None.
    """

    def __init__(self,
                 input_size: Sequence[int] = (8, 8),
                 mask_ratio: float = 0.5,
                 min_num_patches: int = 4,
                 max_num_patches: Optional[int] = None,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None,
                 max_attempts: int = 10,
                 seed: Optional[int] = None) -> None:
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.height, self.width = (int(size) for size in input_size)
        if not 0. <= mask_ratio <= 1.:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        if min_num_patches < 1:
            raise ValueError(f'min_num_patches must be >= 1, got {min_num_patches}')
        self.mask_ratio = mask_ratio
        self.num_masking_patches = round(mask_ratio * self.height * self.width)
        self.min_num_patches = min_num_patches
        self.max_num_patches = (max_num_patches if max_num_patches is not None else
                                self.height * self.width)
        max_aspect = max_aspect if max_aspect is not None else 1. / min_aspect
        self.log_aspect_range = (math.log(min_aspect), math.log(max_aspect))
        self.max_attempts = max_attempts
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size=({self.height}, {self.width}), '
                f'num_masking_patches={self.num_masking_patches}, '
                f'min_num_patches={self.min_num_patches}, '
                f'max_num_patches={self.max_num_patches})')

    def _try_block(self, mask: Tensor, remaining: int,
                   generator: Optional[torch.Generator]) -> int:
        """Try one random block; mask it and return the new cells, or 0 if rejected."""
        max_area = min(remaining, self.max_num_patches)
        area = _uniform(self.min_num_patches, max_area, generator)
        aspect = math.exp(_uniform(*self.log_aspect_range, generator))
        block_h = int(round(math.sqrt(area * aspect)))
        block_w = int(round(math.sqrt(area / aspect)))
        if not (1 <= block_h <= self.height and 1 <= block_w <= self.width):
            return 0
        top = _randint(0, self.height - block_h + 1, generator)
        left = _randint(0, self.width - block_w + 1, generator)
        block = mask[top:top + block_h, left:left + block_w]
        new_cells = int((~block).sum())
        if not 0 < new_cells <= remaining:
            return 0
        block.fill_(True)  # a view: writes into mask
        return new_cells

    def _grow(self, mask: Tensor, missing: int, generator: Optional[torch.Generator]) -> None:
        """Mask ``missing`` more cells, taken from the unmasked border of the masked region."""
        while missing > 0:
            candidates = ~mask & _four_neighbours(mask)
            if not candidates.any():  # nothing masked yet (or no border): any free cell
                candidates = ~mask
            # (h, w) -> (h*w, ) indices of the candidate cells, visited in random order
            candidate_index = candidates.flatten().nonzero().squeeze(1)
            order = torch.randperm(candidate_index.numel(), generator=generator)
            chosen = candidate_index[order[:missing]]
            mask.view(-1)[chosen] = True
            missing -= chosen.numel()

    def __call__(self, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw one mask.

        Args:
            generator (torch.Generator, optional): Source of randomness for this call.

        Returns:
            Tensor: Bool mask of shape (h, w), True = masked, exactly
            ``num_masking_patches`` True cells.
        """
        generator = generator if generator is not None else self.generator
        mask = torch.zeros(self.height, self.width, dtype=torch.bool)
        count, rejections = 0, 0
        while count < self.num_masking_patches and rejections < self.max_attempts:
            remaining = self.num_masking_patches - count
            if min(remaining, self.max_num_patches) < self.min_num_patches:
                break
            new_cells = self._try_block(mask, remaining, generator)
            count += new_cells
            rejections = 0 if new_cells else rejections + 1
        self._grow(mask, self.num_masking_patches - count, generator)
        return mask

    def generate(self, batch_size: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw ``batch_size`` independent masks.

        Returns:
            Tensor: Shape (B, h, w), bool.
        """
        return torch.stack([self(generator) for _ in range(batch_size)])


def global_batch_share(mask_generator: BlockMaskGenerator,
                       batch_size: int,
                       rank: int = 0,
                       world_size: int = 1,
                       generator: Optional[torch.Generator] = None) -> Tensor:
    """This rank's masks out of the masks of the whole global batch.

    Draws ``batch_size * world_size`` masks, one per window of the global batch in sampler order,
    and returns those of the windows this rank holds: mmengine's ``DefaultSampler`` deals the
    windows out in turn (position ``p`` goes to rank ``p % world_size``), so rank ``r`` takes
    masks ``r, r + world_size, ...``. Ranks seeded alike (mmengine's default) draw the same
    stream, so

    - the masks of a global batch are independent draws, where drawing ``batch_size`` masks per
      rank would give every rank the same masks for different windows;
    - one process with batch ``world_size * B`` gives each window the same mask as
      ``world_size`` processes with batch B: distributed training follows the single-process
      run (``tests/tools/test_distributed.py``).

    The price is ``world_size`` times the (small) mask drawing per step on every rank.

    Args:
        mask_generator (BlockMaskGenerator): Draws the masks.
        batch_size (int): This rank's batch size B (equal on all ranks).
        rank (int): This rank. Defaults to 0.
        world_size (int): Number of ranks. Defaults to 1 (then simply B masks).
        generator (torch.Generator, optional): Source of randomness.

    Returns:
        Tensor: Shape (B, h, w), bool.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f'rank must be in [0, {world_size}), got {rank}')
    masks = mask_generator.generate(batch_size * world_size, generator)
    return masks[rank::world_size]


def tube_mask(mask: Tensor, num_steps: int) -> Tensor:
    """Repeat spatial masks over time in :class:`SpaceTimeViT`'s (t, h, w) token order.

    Args:
        mask (Tensor): Shape (B, h, w), or (h, w) for one window.
        num_steps (int): Number of token time steps t.

    Returns:
        Tensor: Shape (B, t*h*w) (B = 1 for a 2D input); token ``ti*h*w + hi*w + wi`` is
        masked iff ``mask[hi, wi]`` is.
    """
    if mask.ndim == 2:
        mask = mask[None]
    batch_size = mask.shape[0]
    # (B, h, w) -> (B, 1, h*w) -> (B, t, h*w) -> (B, t*h*w), time-major like the tokens
    return mask.flatten(1)[:, None, :].expand(-1, num_steps, -1).reshape(batch_size, -1)


def complementary_masks(mask_generator: BlockMaskGenerator,
                        batch_size: int,
                        num_steps: int,
                        generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
    """A tube mask and its complement, for the two passes of eq. 14.

    With ``mask_ratio=0.5`` on a grid with an even number of cells both masks hide exactly half
    of the patches, and together they cover every patch once.

    Args:
        mask_generator (BlockMaskGenerator): Draws the first mask of each window.
        batch_size (int): Number of windows B.
        num_steps (int): Number of token time steps t.
        generator (torch.Generator, optional): Source of randomness (fix it for reproducible
            test scores).

    Returns:
        tuple[Tensor, Tensor]: ``mask`` and ``~mask``, each (B, t*h*w) bool.
    """
    mask = tube_mask(mask_generator.generate(batch_size, generator), num_steps)
    return mask, ~mask


def pixel_tube_mask(mask: Tensor, token_grid: Sequence[int], frames: Sequence[int]) -> Tensor:
    """Upsample a token mask to the pixels of the clip, for masking before the cube embedding.

    Each token of the (t, h, w) grid covers a (T/t, H/h, W/w) block of the clip's (T, H, W)
    frames and pixels; a pixel is masked iff the token whose block holds it is.

    Args:
        mask (Tensor): Token mask (B, t*h*w) bool in (t, h, w) order (as :func:`tube_mask`).
        token_grid (Sequence[int]): (t, h, w).
        frames (Sequence[int]): (T, H, W) of the clip.

    Returns:
        Tensor: Shape (B, 1, T, H, W) bool, True = masked (broadcasts over colour channels).

    Raises:
        ValueError: When ``mask`` does not hold t*h*w tokens, or when T, H, W are not multiples
            of t, h, w (a token would then cover a partial block).
    """
    grid = tuple(int(size) for size in token_grid)
    frames = tuple(int(size) for size in frames)
    if mask.ndim != 2 or mask.shape[1] != grid[0] * grid[1] * grid[2]:
        raise ValueError(f'expected a token mask (B, t*h*w) for the token grid {grid}, got '
                         f'{tuple(mask.shape)}')
    if any(size % cells for size, cells in zip(frames, grid)):
        raise ValueError(f'the clip (T, H, W) = {frames} does not divide into the token grid '
                         f'(t, h, w) = {grid}: each token must cover a whole block of frames '
                         'and pixels; use clips whose size is a multiple of the token grid '
                         '(the cube size of cube_embed times the grid)')
    # (B, t*h*w) -> (B, 1, t, h, w)
    pixels = mask.reshape(mask.shape[0], 1, *grid)
    for axis, (size, cells) in enumerate(zip(frames, grid), start=2):
        # repeat every cell along this axis: (..., cells, ...) -> (..., size, ...)
        pixels = pixels.repeat_interleave(size // cells, dim=axis)
    return pixels


def mask_pixels(imgs: Tensor, mask: Tensor, token_grid: Sequence[int]) -> Tensor:
    """Zero the pixels of the masked tokens' blocks, the masked frames x_m of eq. 5.

    Args:
        imgs (Tensor): Normalised clips (B, C, T, H, W): 0 is then the dataset's mean colour,
            so a masked block shows the mean colour rather than black.
        mask (Tensor): Token mask (B, t*h*w) bool, True = masked.
        token_grid (Sequence[int]): (t, h, w).

    Returns:
        Tensor: ``imgs`` with every masked pixel exactly 0 and every visible one untouched.
    """
    if imgs.ndim != 5:
        raise ValueError(f'expected clips (B, C, T, H, W), got {tuple(imgs.shape)}')
    if mask.shape[0] != imgs.shape[0]:
        raise ValueError(f'{mask.shape[0]} masks for {imgs.shape[0]} clips')
    pixels = pixel_tube_mask(mask.to(imgs.device), token_grid, imgs.shape[2:])
    return imgs.masked_fill(pixels, 0.)  # (B, 1, T, H, W) broadcast over C
