import unittest

from minivllm import BlockAllocator, BlockManager, OutOfBlocks


class BlockAllocatorTest(unittest.TestCase):
    def test_allocates_distinct_blocks_until_exhausted(self):
        allocator = BlockAllocator(num_blocks=8)
        blocks = [allocator.allocate() for _ in range(8)]
        self.assertEqual(sorted(blocks), list(range(8)))
        self.assertEqual(allocator.num_free, 0)
        with self.assertRaises(OutOfBlocks):
            allocator.allocate()

    def test_freed_blocks_are_reused(self):
        allocator = BlockAllocator(num_blocks=4)
        blocks = [allocator.allocate() for _ in range(4)]
        allocator.free(blocks[2])
        self.assertEqual(allocator.num_free, 1)
        self.assertEqual(allocator.allocate(), blocks[2])

    def test_double_free_and_unknown_block_are_rejected(self):
        allocator = BlockAllocator(num_blocks=4)
        block = allocator.allocate()
        allocator.free(block)
        with self.assertRaises(ValueError):
            allocator.free(block)
        with self.assertRaises(ValueError):
            allocator.free(99)

    def test_invalid_sizes(self):
        with self.assertRaises(ValueError):
            BlockAllocator(num_blocks=0)


class BlockManagerTest(unittest.TestCase):
    def test_sequence_grows_one_block_per_block_size_tokens(self):
        manager = BlockManager(BlockAllocator(num_blocks=16, block_size=4))
        manager.allocate_sequence(7, num_prompt_tokens=5)
        self.assertEqual(len(manager.block_table(7)), 2)
        for _ in range(3):
            manager.append_token(7)
        self.assertEqual(len(manager.block_table(7)), 2)
        manager.append_token(7)
        self.assertEqual(len(manager.block_table(7)), 3)

    def test_freeing_a_sequence_returns_its_blocks(self):
        allocator = BlockAllocator(num_blocks=16, block_size=4)
        manager = BlockManager(allocator)
        manager.allocate_sequence(1, 9)
        manager.allocate_sequence(2, 4)
        self.assertEqual(allocator.num_free, 12)
        manager.free_sequence(1)
        self.assertEqual(allocator.num_free, 15)
        self.assertEqual(manager.running, [2])

    def test_tables_never_share_blocks(self):
        manager = BlockManager(BlockAllocator(num_blocks=64, block_size=2))
        for seq in range(10):
            manager.allocate_sequence(seq, 3)
        for seq in range(0, 10, 2):
            manager.free_sequence(seq)
        for seq in range(10, 14):
            manager.allocate_sequence(seq, 5)
        seen = [b for seq in manager.running for b in manager.block_table(seq)]
        self.assertEqual(len(seen), len(set(seen)))


if __name__ == "__main__":
    unittest.main()
