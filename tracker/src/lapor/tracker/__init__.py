"""lapor.tracker"""
