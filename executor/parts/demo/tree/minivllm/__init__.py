"""minivllm: a miniature of an LLM inference engine's KV-cache block manager."""

from minivllm.block_allocator import BlockAllocator, OutOfBlocks
from minivllm.block_manager import BlockManager

__all__ = ["BlockAllocator", "BlockManager", "OutOfBlocks"]
__version__ = "0.1.0"
