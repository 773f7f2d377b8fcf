def main() -> None:
    print("plainsvc")
