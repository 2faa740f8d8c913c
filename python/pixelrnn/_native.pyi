"""Type stubs of the native module (crates/pixelrnn-python). Images cross as raw uint8 bytes,
[count][channels][height][width] row-major; labels as one byte per image."""

from typing import Callable, List, Optional, Tuple

__version__: str

class PixelRnnError(Exception):
    """An error of the pixelrnn library."""

class Model:
    run_dir: str
    checkpoint_path: str
    step: int
    average: Optional[Tuple[float, int]]
    channels: int
    height: int
    width: int
    levels: int
    classes: Optional[int]
    architecture: str
    dataset_name: str
    @staticmethod
    def load(
        run_dir: str, checkpoint: str = "best", raw_weights: bool = False, allow_unchecked: bool = False, device: str = "cpu"
    ) -> "Model": ...
    def config_json(self) -> str: ...
    def nll(self, pixels: bytes, labels: Optional[bytes] = None, batch_size: int = 64) -> List[float]: ...
    def score(self, pixels: bytes, labels: Optional[bytes] = None) -> List[float]: ...
    def sample(
        self, count: int, seed: int = 0, temperature: float = 1.0, labels: Optional[bytes] = None, naive: bool = False
    ) -> bytes: ...
    def complete(
        self,
        pixels: bytes,
        observed_rows: int,
        samples: int = 1,
        seed: int = 0,
        temperature: float = 1.0,
        labels: Optional[bytes] = None,
        naive: bool = False,
    ) -> bytes: ...
    def compress(
        self, pixels: bytes, names: Optional[List[str]] = None, labels: Optional[bytes] = None, chunk: Optional[int] = None
    ) -> Tuple[bytes, List[Tuple[float, float]]]: ...
    def decompress(self, data: bytes) -> Tuple[bytes, int, List[str], Optional[bytes]]: ...
    def dataset(
        self, split: str = "test", limit: Optional[int] = None, data_dir: Optional[str] = None
    ) -> Tuple[bytes, int, Optional[bytes]]: ...
    def export(self, layout: str = "pytorch") -> bytes: ...

def train(flags: List[str], callback: Optional[Callable[[str], None]] = None) -> Tuple[int, bool, Optional[float]]: ...
