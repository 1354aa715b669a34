"""The benchmark's phases as the parent process runs them: start the load process, watch
CPU and logs while it runs, then check and summarise what it measured.
"""
