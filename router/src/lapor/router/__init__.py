"""lapor.router"""
