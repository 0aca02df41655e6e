"""`python -m projlib.cli` == the `greenbench` console script."""

from projlib.cli import main

if __name__ == "__main__":
    main()
