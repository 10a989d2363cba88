"""Per-sequence block tables on top of the allocator, as a scheduler uses them."""

from minivllm.block_allocator import BlockAllocator


class BlockManager:
    """Maps each running sequence to the KV-cache blocks holding its tokens."""

    def __init__(self, allocator: BlockAllocator):
        self.allocator = allocator
        self._tables: dict[int, list[int]] = {}
        self._num_tokens: dict[int, int] = {}

    def blocks_needed(self, num_tokens: int) -> int:
        size = self.allocator.block_size
        return (num_tokens + size - 1) // size

    def allocate_sequence(self, seq_id: int, num_prompt_tokens: int) -> None:
        if seq_id in self._tables:
            raise ValueError(f"sequence {seq_id} already has blocks")
        table = [self.allocator.allocate() for _ in range(self.blocks_needed(num_prompt_tokens))]
        self._tables[seq_id] = table
        self._num_tokens[seq_id] = num_prompt_tokens

    def append_token(self, seq_id: int) -> None:
        tokens = self._num_tokens[seq_id] + 1
        if self.blocks_needed(tokens) > len(self._tables[seq_id]):
            self._tables[seq_id].append(self.allocator.allocate())
        self._num_tokens[seq_id] = tokens

    def free_sequence(self, seq_id: int) -> None:
        for block_id in self._tables.pop(seq_id):
            self.allocator.free(block_id)
        del self._num_tokens[seq_id]

    def block_table(self, seq_id: int) -> list[int]:
        return list(self._tables[seq_id])

    @property
    def running(self) -> list[int]:
        return list(self._tables)
