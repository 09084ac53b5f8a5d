print("chisel")
