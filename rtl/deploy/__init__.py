"""Host side of an open-FPGA build: the pyserial driver copied into deploy/driver/."""

from pathlib import Path

UART_DRIVER = Path(__file__).parent / "uart_driver.py"
