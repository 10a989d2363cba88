"""Fixed-size KV-cache blocks, handed out by id."""


class OutOfBlocks(RuntimeError):
    """No free block is left; the scheduler must preempt or wait."""


class BlockAllocator:
    """Hands out block ids in [0, num_blocks), lowest free id first."""

    def __init__(self, num_blocks: int, block_size: int = 16):
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._used = [False] * num_blocks

    def free_block_ids(self) -> list[int]:
        return [block_id for block_id, used in enumerate(self._used) if not used]

    @property
    def num_free(self) -> int:
        return len(self.free_block_ids())

    def allocate(self) -> int:
        free = self.free_block_ids()
        if not free:
            raise OutOfBlocks(f"all {self.num_blocks} blocks are in use")
        block_id = free[0]
        self._used[block_id] = True
        return block_id

    def free(self, block_id: int) -> None:
        if not 0 <= block_id < self.num_blocks:
            raise ValueError(f"block {block_id} does not exist")
        if not self._used[block_id]:
            raise ValueError(f"double free of block {block_id}")
        self._used[block_id] = False
