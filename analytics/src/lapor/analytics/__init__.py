"""lapor.analytics"""
